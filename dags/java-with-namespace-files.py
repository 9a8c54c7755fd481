"""java-with-namespace-files — `java/DataProcessor.java` over the project file `sales_data.csv`
(walkthrough 2_1, Kestra namespace dev.testing).

Compiles and runs it in a scratch copy of the project files (JDK container or the worker's JDK):
revenue per product, XCom `TOTAL_REVENUE=...`.
Details: docs/walkthrough.md#python-and-java-2_1
"""
from airflow.sdk import DAG

from include.zoomcamp.defaults import RETRY_DEFAULT_ARGS
from include.zoomcamp.walkthrough import DEV_TESTING_TAGS
from include.zoomcamp.walkthrough.java_runner import JavaProgram, java_task

DATA_PROCESSOR = JavaProgram("""
cd java
javac -d build DataProcessor.java
java -cp build DataProcessor ../sales_data.csv
""")

with DAG(dag_id="java-with-namespace-files", schedule=None, default_args=RETRY_DEFAULT_ARGS, tags=DEV_TESTING_TAGS,
         doc_md=__doc__):
    java_task("run_data_processor", DATA_PROCESSOR)
