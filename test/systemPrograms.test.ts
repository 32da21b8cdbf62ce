/**
 * How a suite finds out whether a system program is there (test/helpers/systemPrograms.ts): by launching
 * it. Missing, it skips with one line naming what to install, once a run; under CI=true it is required.
 * The whole story on a machine without the programs is test/freshMachine.test.ts (as root).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { systemProgram } from './helpers/systemPrograms.js';

afterEach(() => {
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
});

/** The lines systemProgram printed while `probe` ran (kept out of the run's output). */
function printedBy(probe: () => void): string {
  const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  probe();
  return write.mock.calls.map(([text]) => String(text)).join('');
}

describe('systemProgram', () => {
  it('finds a program that runs', () => {
    const node = systemProgram(process.execPath, ['--version'], 'Node');
    expect(node).toMatchObject({ available: true, skip: false });
    expect(() => node.require()).not.toThrow();
  });

  it('missing, the suite skips with one line naming what to install, printed once however many suites ask', () => {
    vi.stubEnv('CI', '');
    const printed = printedBy(() => {
      const first = systemProgram('model-updater-missing-program', ['-v'], 'apt-get install -y missing');
      expect(first).toMatchObject({ available: false, skip: true });
      systemProgram('model-updater-missing-program', ['-v'], 'apt-get install -y missing');
    });
    expect(printed).toBe('skipped: model-updater-missing-program is missing: install it (apt-get install -y missing) to run these tests; .ci/run does.\n');
  });

  it('a program that starts but fails counts as missing', () => {
    vi.stubEnv('CI', '');
    printedBy(() => expect(systemProgram(process.execPath, ['-e', 'process.exit(3)'], 'Node')).toMatchObject({ available: false, skip: true }));
  });

  it('under CI=true it is required: no skip, and require() throws the same line', () => {
    vi.stubEnv('CI', 'true');
    const printed = printedBy(() => {
      const program = systemProgram('model-updater-required-program', ['-v'], 'apt-get install -y required');
      expect(program.skip).toBe(false);
      expect(() => program.require()).toThrow('model-updater-required-program is missing: install it (apt-get install -y required) to run these tests; .ci/run does.');
    });
    expect(printed).toBe('');
  });
});
