/**
 * Classification of file system errors for the fs sink: which errno means "not found",
 * which a retry cannot fix, and which may pass if we wait.
 */
import { SinkError, type SinkErrorKind } from './sink.ts'
import { isAbortError } from './common.ts'

/**
 * Permanent: a retry a few seconds later cannot succeed without an operator.
 * - EACCES/EPERM/EROFS: permissions or a read-only mount.
 * - ENOTDIR/EISDIR/EEXIST/ENAMETOOLONG/EINVAL/ELOOP: the key cannot map to a file
 *   here (for example `a` is an object and `a/b` is wanted: a local directory cannot
 *   hold both, unlike S3).
 * - ENOSPC/EDQUOT: space does not come back within a retry's backoff; only an operator
 *   or a prune frees it, and prune cannot run while this writer holds the lease.
 *   Retrying a large upload into a full disk only delays the failure report.
 * Everything else (EIO, EMFILE, EAGAIN, EBUSY, ESTALE on NFS, ETIMEDOUT, …) is
 * transient: those can pass, and a retry is cheap.
 */
const PERMANENT = new Set(['EACCES', 'EPERM', 'EROFS', 'ENOTDIR', 'EISDIR', 'EEXIST', 'ENAMETOOLONG', 'EINVAL', 'ELOOP', 'ENOSPC', 'EDQUOT', 'EFBIG'])

const HINTS: Record<string, string> = {
  EACCES: 'check the permissions of the repository directory',
  EPERM: 'check the permissions of the repository directory',
  EROFS: 'the repository directory is on a read-only file system',
  ENOSPC: 'the file system holding the repository is full',
  EDQUOT: 'the disk quota for the repository directory is exhausted',
  ENOTDIR: 'the key conflicts with an existing object (a local directory cannot hold both `a` and `a/b`)',
  EISDIR: 'the key conflicts with an existing object (a local directory cannot hold both `a` and `a/b`)',
  EEXIST: 'the key conflicts with an existing object (a local directory cannot hold both `a` and `a/b`)',
}

/** The kind of an errno code (without regard to not-found, which depends on the operation). */
export function fsErrorKind(code: string | undefined): SinkErrorKind {
  return code !== undefined && PERMANENT.has(code) ? 'permanent' : 'transient'
}

/** Maps anything thrown by the fs sink's I/O to a SinkError; SinkErrors pass through. `missingIsNotFound` says whether ENOENT means the object is missing. */
export function mapFsError(err: unknown, what: string, key: string | undefined, missingIsNotFound: boolean): SinkError {
  if (err instanceof SinkError) return err
  if (isAbortError(err)) return new SinkError('permanent', 'TM_ERR_ABORTED', `${what}: aborted`, { key, cause: err })
  const code = (err as NodeJS.ErrnoException).code
  const msg = err instanceof Error ? err.message : String(err)
  // ENOTDIR: a parent of the key is an object (file), so this key cannot exist.
  if ((code === 'ENOENT' || code === 'ENOTDIR') && missingIsNotFound) {
    return new SinkError('not_found', 'TM_ERR_SINK_NOT_FOUND', `${what}: no such object`, { key, cause: err })
  }
  const hint = code !== undefined && HINTS[code] ? ` (${HINTS[code]})` : ''
  return new SinkError(fsErrorKind(code), 'TM_ERR_SINK_IO', `${what}: ${msg}${hint}`, { key, cause: err })
}
