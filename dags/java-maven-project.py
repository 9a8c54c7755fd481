"""java-maven-project — builds `java/maven-project` with Maven and runs its jar (walkthrough 2_1,
Kestra namespace dev.testing).

`mvn package` in a scratch copy of the project files (Maven container or the worker's Maven), then
`java -jar`: XCom `TOTAL_ORDERS=...`.
Details: docs/walkthrough.md#python-and-java-2_1
"""
from airflow.sdk import DAG

from include.zoomcamp.defaults import RETRY_DEFAULT_ARGS
from include.zoomcamp.walkthrough import DEV_TESTING_TAGS
from include.zoomcamp.walkthrough.java_runner import MAVEN_IMAGE, JavaProgram, java_task

MAVEN_PROJECT = JavaProgram("""
cd java/maven-project
mvn --quiet package
java -jar target/maven-data-processor.jar
""", image=MAVEN_IMAGE, tools=("mvn", "java"))

with DAG(dag_id="java-maven-project", schedule=None, default_args=RETRY_DEFAULT_ARGS, tags=DEV_TESTING_TAGS,
         doc_md=__doc__):
    java_task("build_and_run", MAVEN_PROJECT)
