"""Reading helmfile projects and mapping their Temporal release onto the environment model.

- `template.py`: the Go-template subset helmfile projects use in values (everything else is
  reported "not understood" with file and line, never guessed);
- `project.py`: helmfile.yaml, its environments and the Temporal release's values layers;
- `mapping.py`: the chart values onto the environment model, with the report;
- `report.py`: the report's items.

The operation that plans, writes and compares an import is operations/helmfile_import.py.
"""
