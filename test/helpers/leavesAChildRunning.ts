/**
 * A test that breaks the rule on purpose: it starts a process and never stops it. Run only by
 * test/leftoverProcesses.test.ts, in a vitest run of its own, to see that run fail and name the process.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { expect, it } from 'vitest';

it('starts a child and leaves it running', () => {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', 'left-running-on-purpose'], { detached: true, stdio: 'ignore' });
  child.unref();
  expect(child.pid).toBeGreaterThan(0);
  writeFileSync(process.env.LEFTOVER_PID_FILE!, String(child.pid));
});
