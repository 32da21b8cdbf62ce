/**
 * Channels and approval: the channel order (a client takes its channel and every more stable one), a
 * pending approval re-decided when the configuration changes, and checks that only look leaving nothing
 * pending in the folder's log. Signed repository on loopback HTTP, real folders, the real CLI.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { channelTakes } from '../machines/selectCandidate.js';
import { replay } from '../src/core/log/replay.js';
import { createSignedRepository, type SignedRepository } from './helpers/signedRepository.js';
import { runCli } from './helpers/runCli.js';

let repo: SignedRepository;
beforeEach(async () => {
  repo = await createSignedRepository();
});
afterEach(async () => {
  await repo.close();
});

async function offer(version: string, channel: string, requires?: { app: string }) {
  const entry = await repo.addVersion(version);
  entry.channel = channel;
  if (requires) entry.requires = requires;
}

const modelRequests = () => repo.server.requests.filter((r) => !r.path.endsWith('manifest.json'));

describe('channel order', () => {
  it('stable < beta < alpha < nightly; a custom channel takes its own and stable', () => {
    expect(channelTakes('beta', 'stable')).toBe(true);
    expect(channelTakes('stable', 'beta')).toBe(false);
    expect(channelTakes('nightly', 'alpha')).toBe(true);
    expect(channelTakes('alpha', 'nightly')).toBe(false);
    expect(channelTakes('pilot', 'stable')).toBe(true);
    expect(channelTakes('pilot', 'beta')).toBe(false);
    expect(channelTakes('beta', 'pilot')).toBe(false);
  });

  it('a client on beta is offered a newer stable version, and the newest beta once it is newer', async () => {
    await offer('1.0.0', 'stable');
    await offer('1.1.0-beta.1', 'beta');
    await offer('1.1.0', 'stable');
    await repo.publish();
    const beta = repo.updater({ channel: 'beta' });
    await beta.start();
    expect(await beta.check()).toMatchObject({ outcome: 'activated', version: '1.1.0' });
    await offer('1.2.0-beta.1', 'beta');
    await offer('1.2.0-alpha.9', 'alpha');
    await repo.publish();
    expect(await beta.check()).toMatchObject({ outcome: 'activated', version: '1.2.0-beta.1' });
  });

  it('a stable client is not offered beta; a custom channel gets its own versions and stable ones', async () => {
    await offer('1.0.0', 'stable');
    await offer('1.1.0', 'beta');
    await offer('1.0.1', 'pilot');
    await repo.publish();
    const stable = repo.updater();
    await stable.start();
    expect(await stable.check()).toMatchObject({ outcome: 'activated', version: '1.0.0' });
    stable.stop();
    const pilot = repo.updater({ channel: 'pilot', dir: join(repo.root, 'pilot') });
    await pilot.start();
    expect(await pilot.check()).toMatchObject({ outcome: 'activated', version: '1.0.1' });
  });
});

describe('a pending approval is re-decided', () => {
  /** 1.0.0 installed on stable, then 1.1.0 on beta waiting for approval in a beta client; stopped. */
  async function pendingBeta(extra: { app?: string } = {}) {
    await offer('1.0.0', 'stable');
    await repo.publish();
    const first = repo.updater({ channel: 'beta', ...(extra.app ? { appVersion: '2.0.0' } : {}) });
    await first.start();
    await first.check();
    await offer('1.1.0', 'beta', extra.app ? { app: extra.app } : undefined);
    await repo.publish();
    first.stop();
    const asking = repo.updater({ channel: 'beta', policy: { checkOnStart: false, approval: 'ask' }, ...(extra.app ? { appVersion: '2.0.0' } : {}) });
    await asking.start();
    expect(await asking.check()).toMatchObject({ outcome: 'awaiting-approval', version: '1.1.0' });
    asking.stop();
  }

  it('restarting on stable drops an update found on beta: approve() installs nothing', async () => {
    await pendingBeta();
    const fetched = modelRequests().length;
    const stable = repo.updater({ channel: 'stable', policy: { checkOnStart: false, approval: 'ask' } });
    await stable.start();
    expect(stable.getSnapshot().matches('awaitingApproval')).toBe(false);
    expect(stable.getSnapshot().context.candidate).toBeNull();
    await stable.approve();
    expect(stable.active?.version).toBe('1.0.0');
    expect(modelRequests().length).toBe(fetched);
    // The log says the same: replayed, the folder has nothing pending.
    expect(replay(stable.log.records())!.matches('awaitingApproval')).toBe(false);
  });

  it('a new app version that the candidate no longer fits drops it', async () => {
    await pendingBeta({ app: '^2.0.0' });
    const upgraded = repo.updater({ channel: 'beta', appVersion: '3.0.0', policy: { checkOnStart: false, approval: 'ask' } });
    await upgraded.start();
    expect(upgraded.getSnapshot().matches('awaitingApproval')).toBe(false);
    await upgraded.approve();
    expect(upgraded.active?.version).toBe('1.0.0');
  });

  it('a policy that now skips the candidate drops it', async () => {
    await pendingBeta();
    const skipping = repo.updater({ channel: 'beta', policy: { checkOnStart: false, approval: 'ask', skip: ['1.1.0'] } });
    await skipping.start();
    expect(skipping.getSnapshot().matches('awaitingApproval')).toBe(false);
    await skipping.approve();
    expect(skipping.active?.version).toBe('1.0.0');
  });

  it('a configuration under which the candidate still stands keeps it pending, and approve() installs it', async () => {
    await pendingBeta({ app: '^2.0.0' });
    const same = repo.updater({ channel: 'beta', appVersion: '2.1.0', policy: { checkOnStart: false, approval: 'ask' } });
    await same.start();
    expect(same.getSnapshot().matches('awaitingApproval')).toBe(true);
    expect(await same.approve()).toMatchObject({ outcome: 'activated', version: '1.1.0' });
  });
});

describe('a check that only looks leaves nothing pending', () => {
  beforeEach(async () => {
    await offer('1.0.0', 'stable');
    await repo.publish();
  });

  it('API: check({ look: true }) reports the version (outcome available) and downloads nothing, whatever the approval policy', async () => {
    const updater = repo.updater({ policy: { checkOnStart: false, approval: 'ask' } });
    await updater.start();
    expect(await updater.check('manual', { look: true })).toMatchObject({ outcome: 'available', version: '1.0.0', error: null });
    expect(updater.getSnapshot().matches('idle')).toBe(true);
    expect(modelRequests()).toEqual([]);
    updater.stop();
    const auto = repo.updater({ policy: { checkOnStart: false, approval: 'auto' } });
    await auto.start();
    expect(auto.getSnapshot().matches('idle')).toBe(true);
    expect(auto.active).toBeNull();
    expect(modelRequests()).toEqual([]);
  });

  it('CLI: check leaves nothing for a later start or approve() to install', async () => {
    const key = join(repo.root, 'root.pub');
    await writeFile(key, `${repo.rootKey.publicKey}\n`);
    const check = await runCli(['check', '--manifest', repo.manifestUrl, '--dir', repo.dir, '--trusted-key', key, '--json']);
    expect(check.json).toMatchObject({ ok: true, outcome: 'available', updateAvailable: true, candidate: { version: '1.0.0' } });
    const host = repo.updater({ policy: { checkOnStart: false, approval: 'ask' } });
    await host.start();
    expect(host.getSnapshot().matches('awaitingApproval')).toBe(false);
    await host.approve();
    expect(host.active).toBeNull();
    expect(modelRequests()).toEqual([]);
  });
});
