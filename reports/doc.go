// Package reports turns the results of a rehearsal (results.RunFile) into
// the auth-impact report the seed document tried to write by hand, now from
// measurements, in four formats:
//
//   - md: the Markdown report: the question and a one-line answer, an
//     executive summary, the measured timeline, outage windows per probe, the
//     fate of every seeded token, the invariants, the seed's claims held or
//     refuted with evidence, a side-by-side comparison of strategies and the
//     recommendation that follows;
//   - html: one self-contained file through html/template, with the same
//     tables (links from the summary to each scenario, failed expectations
//     first) and an inline SVG timeline (a lane per probe, phase markers,
//     window lengths);
//   - junit: JUnit XML for CI, one test case per scenario, and one more for
//     a scenario's server errors;
//   - json: the results file itself (results.schema.json, versioned).
//
// It runs nothing and imports nothing that does: every verdict is derived
// from the typed fields of a results.Result (kinds, statuses, phases,
// numbers), never from the sentences the harness wrote for people. Secrets
// never appear in clear: tokens, password hashes and the passwords the run
// used are replaced by short fingerprints before anything is rendered, in
// the reports and in the results file (WriteResults).
//
// See README.md for the results format and its versioning.
package reports
