#!/usr/bin/env node
/**
 * The `model-updater` command: publish to a static update service, check, update, inspect, roll back.
 * Each command's module is loaded only when it runs: start-up time counts in every update.
 */
import { CliOutput } from './output.js';

interface Command {
  usage: string;
  run(argv: string[]): Promise<number>;
}

const commands: Record<string, () => Promise<Command>> = {
  keygen: () => import('./commands/keygen.js'),
  publish: () => import('./commands/publish.js'),
  check: async () => {
    const update = await import('./commands/update.js');
    return { usage: update.checkUsage, run: (argv) => update.run(argv, 'check') };
  },
  update: async () => {
    const update = await import('./commands/update.js');
    return { usage: update.updateUsage, run: (argv) => update.run(argv, 'update') };
  },
  apply: () => import('./commands/apply.js'),
  status: () => import('./commands/status.js'),
  log: () => import('./commands/log.js'),
  rollback: () => import('./commands/rollback.js'),
  release: () => import('./commands/release.js'),
  'verify-service': () => import('./commands/verifyService.js'),
  gc: () => import('./commands/gc.js'),
  stats: () => import('./commands/stats.js'),
};

async function help(): Promise<string> {
  const all = await Promise.all(Object.values(commands).map((load) => load()));
  return ['usage: model-updater <command> [options]', '', ...all.map((c) => `  model-updater ${c.usage}`), ''].join('\n');
}

// `model-updater log --json | head -1`: the reader went away. Stop quietly, as a filter should.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
  process.exit(0);
});

const [name, ...argv] = process.argv.slice(2);
const load = name !== undefined && Object.hasOwn(commands, name) ? commands[name] : undefined;
if (!load) {
  const known = name === undefined || name === 'help' || name === '--help' || name === '-h';
  (known ? process.stdout : process.stderr).write(known ? await help() : `unknown command "${name}"\n\n${await help()}`);
  process.exitCode = known ? 0 : 2;
} else if (argv.includes('--help') || argv.includes('-h')) {
  process.stdout.write(`usage: model-updater ${(await load()).usage}\n`);
  process.exitCode = 0;
} else {
  try {
    process.exitCode = await (await load()).run(argv);
  } catch (error) {
    // Errors before a command's own handling (a bad flag) still answer in the format asked for.
    process.exitCode = new CliOutput(argv.includes('--json')).failure(error);
  }
}
