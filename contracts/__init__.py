"""The typed contracts between the workflows, the activities, the operations layer and tests.

Everything here is plain pydantic (plus the activities' typed references): no I/O, no
boto3/kubernetes/pymysql/subprocess, so workflow code can import it inside the sandbox.
One module per step (`contracts/<step>.py`: its input, its result and the typed reference
the workflows call it by), and one per workflow (`bootstrap.py`, `drift_check.py`,
`upgrade.py`).

A check (tests/unit/test_architecture.py) fails the build when anything here, or any workflow
module, reaches an I/O library, directly or through another first-party module.
"""
