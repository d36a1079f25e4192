/**
 * UTC offsets (in minutes) of the alphabetic time zone abbreviations the IANA time
 * zone database prints for current dates. PostgreSQL writes `START TIME` in a
 * backup_label with such an abbreviation (or a numeric one such as `+04`) for the
 * server's log_timezone. Several abbreviations are ambiguous (IST is Ireland, Israel
 * and India), so each maps to every offset it stands for; the caller disambiguates.
 * PostgreSQL's own timezone_abbreviations table is for parsing input and would read
 * India's IST as Israel's, so it is not used here.
 */
export const TZ_ABBREVIATIONS: Readonly<Record<string, readonly number[]>> = Object.freeze({
  UTC: [0], UCT: [0], GMT: [0], Z: [0], WET: [0], WEST: [60], BST: [60], IST: [60, 120, 330],
  CET: [60], CEST: [120], MET: [60], MEST: [120], EET: [120], EEST: [180], MSK: [180],
  WAT: [60], CAT: [120], SAST: [120], EAT: [180], IDT: [180], PKT: [300],
  WIB: [420], WITA: [480], WIT: [540], AWST: [480], HKT: [480], JST: [540], KST: [540],
  ACST: [570], ACDT: [630], AEST: [600], AEDT: [660], ChST: [600], NZST: [720], NZDT: [780],
  SST: [-660], HST: [-600], HDT: [-540], AKST: [-540], AKDT: [-480], PST: [-480, 480], PDT: [-420],
  MST: [-420], MDT: [-360], CST: [-360, -300, 480], CDT: [-300, -240], EST: [-300], EDT: [-240],
  AST: [-240], ADT: [-180], NST: [-210], NDT: [-150],
})
