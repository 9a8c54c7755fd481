"""java-hello-world, java-with-namespace-files, java-maven-project — Java code in flows
(walkthrough 2_1, Kestra namespace dev.testing).

Each DAG is one task that runs a shell script in a scratch copy of `include/walkthrough_files/`
(the project files, Kestra's namespace files). Where it runs is chosen in one place for all of
them, `include/zoomcamp/walkthrough/java_runner.py`: in a container (DockerOperator, images
`eclipse-temurin:17-jdk` and `maven:3.9-eclipse-temurin-17`) when a Docker engine is there, else
with the worker's JDK 17 and Maven (BashOperator); setting `ZOOMCAMP_JAVA_RUNNER=docker|local|auto`
decides. Without a JDK (or Maven, or Docker) the task fails at once saying what to install.
The program's last output line is the task's XCom.

`java-hello-world`: compiles and runs `java/HelloWorld.java`.
`java-with-namespace-files`: compiles `java/DataProcessor.java` and runs it over `sales_data.csv`
(revenue per product; XCom `TOTAL_REVENUE=...`).
`java-maven-project`: `mvn package` builds `java/maven-project` (pom.xml,
src/main/java/com/example/MavenDataProcessor.java) into a jar, then runs it (XCom `TOTAL_ORDERS=...`).
"""
from airflow.sdk import DAG

from include.zoomcamp import config
from include.zoomcamp.defaults import RETRY_DEFAULT_ARGS
from include.zoomcamp.walkthrough.java_runner import MAVEN_IMAGE, JavaProgram, java_task

TAGS = [config.WALKTHROUGH_TAG, config.DEV_TESTING_NAMESPACE]

HELLO_WORLD = JavaProgram("""
cd java
javac -d build HelloWorld.java
java -cp build HelloWorld
""")

DATA_PROCESSOR = JavaProgram("""
cd java
javac -d build DataProcessor.java
java -cp build DataProcessor ../sales_data.csv
""")

MAVEN_PROJECT = JavaProgram("""
cd java/maven-project
mvn --quiet package
java -jar target/maven-data-processor.jar
""", image=MAVEN_IMAGE, tools=("mvn", "java"))

with DAG(dag_id="java-hello-world", schedule=None, default_args=RETRY_DEFAULT_ARGS, tags=TAGS, doc_md=__doc__):
    java_task("compile_and_run", HELLO_WORLD)

with DAG(dag_id="java-with-namespace-files", schedule=None, default_args=RETRY_DEFAULT_ARGS, tags=TAGS,
         doc_md=__doc__):
    java_task("run_data_processor", DATA_PROCESSOR)

with DAG(dag_id="java-maven-project", schedule=None, default_args=RETRY_DEFAULT_ARGS, tags=TAGS, doc_md=__doc__):
    java_task("build_and_run", MAVEN_PROJECT)
