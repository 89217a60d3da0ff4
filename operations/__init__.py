"""The operations layer: what operators do, as typed operations on the bootstrap Temporal
server, for the starter (a thin command layer over it) and for tests.

- `actions`: the starter's commands on provisioning, dry and upgrade runs (provision, status,
  approve/retry/skip/abort/pause/resume, upgrade): each picks the workflow for the run it
  addresses (`RunKind`) and yields what to show and how it ended (`outcome`: `Say`,
  `Outcome`); the one follow loop lives here;
- `settings`: the bootstrap server's client settings (temporalio.envconfig), the embedded
  server fallback and `--local-stack`;
- `runs`: provisioning runs: start or attach, follow (typed events), send operator actions;
- `drift`: drift checks and their schedule;
- `upgrade`: upgrade runs: plan, start or attach, follow (steered like provisioning runs);
- `environments`: offline load, render (once per command: `prepare`) and summary of
  environment files;
- `render`: how all of it is shown to people (the only module that formats text);
- `embedded`, `processes`: the embedded dev server and the PID helpers it needs.

Nothing here prints; failures are typed exceptions whose messages say what to do.
"""
