"""The AI copilot (course 2.5.3): a plain-language request becomes a validated DAG draft.

`context` gathers what the model is told (installed operators, the project's conventions, an example
DAG), `validation` checks a draft for real, `drafting` runs the generate-validate loop and writes
valid drafts outside `dags/`.
"""
