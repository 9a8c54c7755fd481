"""The Kestra-on-GCP walkthrough's flows (issue 9): one module per pipeline family."""
