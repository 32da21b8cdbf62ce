/**
 * The trust decision on a fetched chunk-index document, after its manifest was accepted: it must be
 * signed by the key set that manifest left trusted (threshold included), name the same model, and be
 * of the chunk-index type. A manifest taken unsigned (allowUnsigned, no keys) takes its document so too.
 */
import type { TrustState } from '../../../machines/types.js';
import { UpdateError } from '../errors.js';
import { parseChunkIndexDocument, type ChunkIndexEntry } from '../manifest/chunkIndexDocument.js';
import { looksSigned, parseEnvelope } from './envelope.js';
import { validSigners } from './verifySignatures.js';

export interface ChunkIndexTrust {
  /** The trust state after accepting the manifest (a rotation's new keys). */
  trust: TrustState;
  /** The manifest was accepted without a signature check. */
  unsigned: boolean;
  /** The manifest's model. */
  modelId: string;
}

/**
 * @example
 * const entries = await acceptChunkIndexes(parseStrictJson(bytes, url), { trust: accepted.trust, unsigned: accepted.unsigned, modelId }, url)
 */
export async function acceptChunkIndexes(document: unknown, policy: ChunkIndexTrust, source: string): Promise<ChunkIndexEntry[]> {
  let payload = document;
  if (looksSigned(document)) {
    const envelope = parseEnvelope(document, source);
    payload = envelope.signed;
    if (!policy.unsigned) {
      const signers = await validSigners(envelope, policy.trust.keys);
      if (signers.size < policy.trust.threshold) {
        throw new UpdateError('SIGNATURE_INVALID', `${source} has ${signers.size} valid signature(s) by trusted keys, ${policy.trust.threshold} needed; its chunk indexes are not used (files are downloaded whole). Publish again with the current keys.`);
      }
    }
  } else if (!policy.unsigned) {
    throw new UpdateError('SIGNATURE_INVALID', `${source} is not signed, but its manifest is; its chunk indexes are not used (files are downloaded whole). Publish again with \`--key\`.`);
  }
  const parsed = parseChunkIndexDocument(payload, source);
  if (parsed.modelId !== policy.modelId) {
    throw new UpdateError('MANIFEST_INVALID', `${source} describes model "${parsed.modelId}", but the manifest is for "${policy.modelId}"; its chunk indexes are not used.`);
  }
  return parsed.files;
}
