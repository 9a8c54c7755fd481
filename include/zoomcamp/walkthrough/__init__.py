"""The Kestra-on-GCP walkthrough's flows: one module, or a package of small modules, per pipeline family."""
from include.zoomcamp import config

# A walkthrough DAG carries the walkthrough's tag and its Kestra namespace.
DEV_TESTING_TAGS = (config.WALKTHROUGH_TAG, config.DEV_TESTING_NAMESPACE)
YELLOW_CAB_TAGS = (config.WALKTHROUGH_TAG, config.YELLOW_CAB_TAG)
ECOMMERCE_TAGS = (config.WALKTHROUGH_TAG, config.ECOMMERCE_TAG)
