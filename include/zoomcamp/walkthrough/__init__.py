"""The Kestra-on-GCP walkthrough's flows: one module per pipeline family."""
