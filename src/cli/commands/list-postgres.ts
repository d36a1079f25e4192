/**
 * The PostgreSQL part of `tidemark list`: per cluster, the base backups with what
 * each can restore to, the recovery window per timeline, and the WAL archive's state
 * (segments, gaps, the open segment's last upload, the last proven time); and the
 * logical dumps with their restore points.
 */
import type { SystemCatalog } from '../../engine/postgres/catalog.ts'
import type { PostgresDumpManifest } from '../../engine/postgres/dump-manifest.ts'
import { formatMicros } from '../../engine/postgres/instant.ts'
import { formatLsn, walFileName } from '../../engine/postgres/wal.ts'
import type { Lister } from './list.ts'

const us = (v: bigint | undefined) => (v === undefined ? null : formatMicros(v))

function backups(c: SystemCatalog): Record<string, unknown>[] {
  return c.backups.map((m, i) => {
    const w = c.windows[i]
    return {
      id: m.id,
      timeline: m.postgres.timeline,
      startLsn: m.postgres.startLsn,
      stopLsn: m.postgres.stopLsn,
      startTime: m.postgres.startTime,
      endTime: m.postgres.endTime,
      tarBytes: m.postgres.tarBytes,
      storedBytes: m.objects.reduce((a, o) => a + o.size, 0),
      restorable: w?.restorable ?? false,
      reason: w?.reason ?? null,
      recoveryTimeline: w?.timeline ?? null,
      restorableFrom: w?.restorable ? us(w.from) : null,
      restorableTo: us(w?.to),
      walArchivedTo: w?.restorable ? formatLsn(w.coverageEnd) : null,
    }
  })
}

function timelines(c: SystemCatalog): Record<string, unknown>[] {
  const seg = c.segSize ?? 0
  return [...c.listing.entries()].sort(([a], [b]) => a - b).map(([tli, l]) => {
    const a = c.archive?.timelines.get(tli)
    const segs = [...(a?.segments ?? [])].sort((x, y) => (x < y ? -1 : 1))
    const hb = a?.heartbeats.at(-1)
    return {
      timeline: tli,
      segments: l.segments.length,
      firstSegment: segs.length && seg ? walFileName(tli, segs[0] as bigint, seg) : null,
      lastSegment: segs.length && seg ? walFileName(tli, segs.at(-1) as bigint, seg) : null,
      history: a?.history?.map((h) => ({ parentTimeline: h.parentTimeline, switchLsn: formatLsn(h.switchLsn) })) ?? null,
      openSegment: a?.partial && seg ? { segment: walFileName(tli, a.partial.segno, seg), coversLsn: formatLsn(a.partial.coversLsn) } : null,
      lastHeartbeat: hb ? { at: formatMicros(hb.us), lsn: formatLsn(hb.lsn) } : null,
      gaps: (c.gaps.get(tli) ?? []).map((g) => ({ from: g.from, to: g.to, count: Number(g.count) })),
    }
  })
}

/** The data of one cluster. */
export function systemData(c: SystemCatalog): Record<string, unknown> {
  return {
    systemId: c.systemId,
    walSegSize: c.segSize ?? null,
    recoveryWindows: c.timeWindows.map((w) => ({ timeline: w.timeline, from: formatMicros(w.from), to: formatMicros(w.to), backups: w.backups })),
    backups: backups(c),
    timelines: timelines(c),
  }
}

/** The text of one cluster. */
export function systemText(d: ReturnType<typeof systemData>): string {
  const lines = [`cluster ${d.systemId}`]
  const windows = d.recoveryWindows as { timeline: number; from: string; to: string }[]
  lines.push('  recovery window:', ...(windows.length ? windows.map((w) => `    timeline ${w.timeline}: ${w.from} to ${w.to}`) : ['    none yet']))
  lines.push('  base backups:')
  for (const b of d.backups as Record<string, unknown>[]) {
    const to = b.restorable ? `restorable from ${b.restorableFrom}${b.restorableTo ? ` to ${b.restorableTo}` : ' (no later time proven yet)'}` : `not restorable: ${b.reason}`
    lines.push(`    ${b.id}  timeline ${b.timeline}  ${b.startLsn}..${b.stopLsn}  ${b.tarBytes} bytes  ${to}`)
  }
  if ((d.backups as unknown[]).length === 0) lines.push('    none')
  lines.push('  WAL archive:')
  for (const t of d.timelines as Record<string, unknown>[]) {
    const gaps = t.gaps as { from: string; to: string }[]
    const open = t.openSegment as { segment: string; coversLsn: string } | null
    const hb = t.lastHeartbeat as { at: string } | null
    lines.push(`    timeline ${t.timeline}: ${t.segments} segments${t.firstSegment ? ` ${t.firstSegment}..${t.lastSegment}` : ''}${open ? `, open ${open.segment} to ${open.coversLsn}` : ''}${hb ? `, last heartbeat ${hb.at}` : ''}`)
    for (const g of gaps) lines.push(`      GAP: ${g.from}..${g.to} missing`)
  }
  return lines.join('\n')
}

/** The data of one logical dump. */
export function dumpData(m: PostgresDumpManifest): Record<string, unknown> {
  return { id: m.id, method: m.method, database: m.postgres.database, at: m.postgres.at, notBefore: m.postgres.notBefore, serverMajor: m.postgres.serverMajor, dumpBytes: m.postgres.dumpBytes, storedBytes: m.objects.reduce((a, o) => a + o.size, 0) }
}

function dumpsText(dumps: Record<string, unknown>[]): string {
  return ['logical dumps (each restores to its time only):', ...dumps.map((d) => `  ${d.id}  database ${d.database}  at ${d.at}  ${d.dumpBytes} bytes`)].join('\n')
}

/** Lists the PostgreSQL base backups and the WAL archive of every cluster in the repository, and the logical dumps. */
export const listPostgres: Lister = async (_ctx, repo) => {
  const { readCatalog } = await import('../../engine/postgres/catalog.ts')
  const { listDumps } = await import('../../engine/postgres/dump-catalog.ts')
  const clusters = (await readCatalog(repo)).map(systemData)
  const dumps = (await listDumps(repo)).map(dumpData)
  const parts = [...clusters.map(systemText), ...(dumps.length ? [dumpsText(dumps)] : [])]
  return { data: { clusters, dumps }, text: parts.length ? parts.join('\n') : 'no PostgreSQL backups or WAL' }
}
