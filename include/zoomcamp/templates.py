"""Jinja expressions the DAGs pass to their tasks: one place for how a Variable is read."""


def variable(name: str, default: str) -> str:
    """The Variable `name` at run time (never at parse time), `default` when it is not set.

    Set in the UI (Admin > Variables) or the CLI, it takes effect at the next run.
    """
    return "{{ var.value.get('%s', '%s') }}" % (name, default)
