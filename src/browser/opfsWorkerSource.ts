/**
 * The OPFS worker's script (opfsWorker.ts bundled with hash-wasm), as text for a Blob URL. In the
 * sources it is undefined; `npm run build` writes the bundled script into the published file
 * (dist/src/browser/opfsWorkerSource.js), and a bundle made from the sources gets it from the esbuild
 * plugin in scripts/bundleBrowserWorker.ts. Undefined, the store keeps its files in IndexedDB.
 */
export const OPFS_WORKER_SOURCE: string | undefined = undefined;
