/**
 * `model-updater/publish`: the publisher's side. Writes a static update service (publish), makes and
 * reads signing keys, and signs manifests. A host that only runs updates never loads this.
 */
export { publish, sha256File, type PublishOptions } from './publish.js';
export { generateKeyPair, keyIdOf, parsePrivateKeyText, parsePublicKeyText, type KeyPair } from './keys.js';
export { readPrivateKeyFile, readPublicKeyFile, writeKeyPair } from './keyFiles.js';
export { signEnvelope } from './sign.js';
export { type SignedEnvelope, type Signature } from '../core/trust/envelope.js';
export { canonicalJson } from '../core/trust/canonical.js';
export { parseManifest, parseManifestText, MANIFEST_SCHEMA_VERSION } from '../core/manifest/schema.js';
export type { Manifest, ManifestVersion, ManifestFile } from '../../machines/types.js';
export { verifyService, EXPIRY_WARNING_MS, type VerifyServiceOptions, type ServiceReport, type FileReport, type ChunkIndexReport } from './verifyService.js';
export {
  CHUNK_INDEX_DOCUMENT_FILE,
  CHUNK_INDEX_DOCUMENT_TYPE,
  chunkIndexDocumentUrl,
  parseChunkIndexDocument,
  type ChunkIndexDocument,
  type ChunkIndexEntry,
} from '../core/manifest/chunkIndexDocument.js';
