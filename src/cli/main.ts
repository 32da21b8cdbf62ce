#!/usr/bin/env node
/**
 * The `model-updater` command: publish to a static update service, check, update, inspect, roll back.
 */
import * as keygen from './commands/keygen.js';
import * as gc from './commands/gc.js';
import * as stats from './commands/stats.js';
import * as log from './commands/log.js';
import { CliOutput } from './output.js';
import * as publish from './commands/publish.js';
import * as rollback from './commands/rollback.js';
import * as status from './commands/status.js';
import * as update from './commands/update.js';

const commands: Record<string, { usage: string; run: (argv: string[]) => Promise<number> }> = {
  keygen: { usage: keygen.usage, run: keygen.run },
  publish: { usage: publish.usage, run: publish.run },
  check: { usage: update.checkUsage, run: (argv) => update.run(argv, 'check') },
  update: { usage: update.updateUsage, run: (argv) => update.run(argv, 'update') },
  status: { usage: status.usage, run: status.run },
  log: { usage: log.usage, run: log.run },
  rollback: { usage: rollback.usage, run: rollback.run },
  gc: { usage: gc.usage, run: gc.run },
  stats: { usage: stats.usage, run: stats.run },
};

function help(): string {
  return ['usage: model-updater <command> [options]', '', ...Object.values(commands).map((c) => `  model-updater ${c.usage}`), ''].join('\n');
}

const [name, ...argv] = process.argv.slice(2);
const command = name ? commands[name] : undefined;
if (!command) {
  const known = name === undefined || name === 'help' || name === '--help' || name === '-h';
  (known ? process.stdout : process.stderr).write(known ? help() : `unknown command "${name}"\n\n${help()}`);
  process.exitCode = known ? 0 : 2;
} else {
  try {
    process.exitCode = await command.run(argv);
  } catch (error) {
    // Errors before a command's own handling (a bad flag) still answer in the format asked for.
    process.exitCode = new CliOutput(argv.includes('--json')).failure(error);
  }
}
