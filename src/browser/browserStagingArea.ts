/**
 * The staging area the browser store hands the updater before it knows where bytes can go: once
 * init() chose, every call goes to the OPFS worker's staging (opfsStagingArea.ts) or, where OPFS or
 * sync access handles are missing, to IndexedDB chunks (idbStagingArea.ts). Writes at any offset
 * (`openRandomAccess`) exist only on OPFS: without it the updater downloads each file whole, in order.
 */
import type { OpenOptions, RandomAccessFile, ResumeRecord, Sha256, StagedFile, StagedWriter, StagingArea } from '../core/ports/stagingArea.js';
import { IdbStagingArea } from './idbStagingArea.js';
import type { OpfsStagingArea } from './opfsStagingArea.js';

export class BrowserStagingArea implements StagingArea {
  /** Set by the store's init() when OPFS works here. */
  opfs: OpfsStagingArea | undefined;
  openRandomAccess?: (file: StagedFile, size: number) => Promise<RandomAccessFile>;

  constructor(readonly idb: IdbStagingArea) {}

  private get chosen(): StagingArea {
    return this.opfs ?? this.idb;
  }

  /** Chooses OPFS (with writes at any offset) or keeps IndexedDB chunks. */
  use(opfs: OpfsStagingArea | undefined): void {
    this.opfs = opfs;
    if (opfs) this.openRandomAccess = (file, size) => opfs.openRandomAccess(file, size);
    else delete this.openRandomAccess;
  }

  get beforeWrite(): () => Promise<void> {
    return this.idb.beforeWrite;
  }
  set beforeWrite(flush: () => Promise<void>) {
    this.idb.beforeWrite = flush;
    if (this.opfs) this.opfs.beforeWrite = flush;
  }

  size(file: StagedFile): Promise<number> {
    return this.chosen.size(file);
  }
  readRecord(file: StagedFile): Promise<ResumeRecord | undefined> {
    return this.chosen.readRecord(file);
  }
  writeRecord(file: StagedFile, record: ResumeRecord): Promise<void> {
    return this.chosen.writeRecord(file, record);
  }
  hashPrefix(file: StagedFile, length: number, signal: AbortSignal): Promise<{ hash: Sha256; length: number }> {
    return this.chosen.hashPrefix(file, length, signal);
  }
  createHash(): Promise<Sha256> {
    return this.chosen.createHash();
  }
  open(file: StagedFile, options: OpenOptions): Promise<StagedWriter> {
    return this.chosen.open(file, options);
  }
  sync(file: StagedFile): Promise<void> {
    return this.chosen.sync(file);
  }
  remove(file: StagedFile): Promise<void> {
    return this.chosen.remove(file);
  }
  removeRecord(file: StagedFile): Promise<void> {
    return this.chosen.removeRecord(file);
  }
}
