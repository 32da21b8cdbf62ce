import { parseArgs } from 'node:util';
import { writeKeyPair } from '../../publish/keyFiles.js';
import { parsed, required } from '../args.js';
import { CliOutput } from '../output.js';

export const usage = 'keygen --out <prefix> [--json]';

/** `keygen` writes an Ed25519 key pair: `<prefix>.pub` for clients, `<prefix>.key` (0600) for `publish --key`. */
export async function run(argv: string[]): Promise<number> {
  const { values } = parsed(() => parseArgs({ args: argv, options: { out: { type: 'string' }, json: { type: 'boolean' } } }));
  const output = new CliOutput(values.json ?? false);
  try {
    const written = await writeKeyPair(required(values.out, '--out'));
    output.result({ ok: true, ...written }, [
      `public key:  ${written.publicKeyPath}  (give it to clients: --trusted-key, or trustedKeys)`,
      `private key: ${written.privateKeyPath}  (mode 0600; keep it secret, sign with publish --key)`,
      `key id:      ${written.keyid}`,
    ]);
    return 0;
  } catch (error) {
    return output.failure(error);
  }
}
