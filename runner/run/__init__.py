"""One run, from a composed config to one result.json: validation (validate.py), resume
(resume.py), the environment it ran in (environment.py), and set-up, training and the result
(execute.py). The task (runner/tasks/) decides what is trained and how it is scored."""
from runner.run.execute import run

__all__ = ["run"]
