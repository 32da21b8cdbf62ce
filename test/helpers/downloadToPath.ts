/**
 * downloadFile() on Node into one given file: the Node transport and a file staging area whose staged
 * file is `partPath` (its resume record in the folder's `resume/`). For tests that read the file.
 */
import path from 'node:path';
import { downloadFile, type DownloadFileOptions } from '../../src/core/download/downloadFile.js';
import { FileStagingArea } from '../../src/node/fileStagingArea.js';
import { createNodeTransport, type NodeTransportOptions } from '../../src/node/nodeTransport.js';

class OneFileStagingArea extends FileStagingArea {
  constructor(private readonly partPath: string) {
    super(path.dirname(partPath));
  }

  override pathOf(): string {
    return this.partPath;
  }
}

export type DownloadToPathOptions = Omit<DownloadFileOptions, 'file' | 'transport' | 'staging'> & NodeTransportOptions & { partPath: string };

/**
 * @example
 * const { sha256 } = await downloadToPath({ url, partPath: '/tmp/x/model.part', expectedSize: 1000 })
 */
export function downloadToPath({ partPath, ca, direct, proxy, ...options }: DownloadToPathOptions) {
  const transport = createNodeTransport({ ...(ca === undefined ? {} : { ca }), ...(direct === undefined ? {} : { direct }), ...(proxy === undefined ? {} : { proxy }) });
  return downloadFile({ file: { version: 'test', path: path.basename(partPath) }, transport, staging: new OneFileStagingArea(partPath), ...options });
}
