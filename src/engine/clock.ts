/** The one source of time for the engine, so tests can move it (retention, leases, schedules, RPO). */
export interface Clock {
  now(): Date
}

export const systemClock: Clock = { now: () => new Date() }

/** A clock tests set and advance by hand. */
export function manualClock(start: Date | string): Clock & { set(t: Date | string): void; advance(ms: number): void } {
  let t = new Date(start).getTime()
  return {
    now: () => new Date(t),
    set: (v) => {
      t = new Date(v).getTime()
    },
    advance: (ms) => {
      t += ms
    },
  }
}
