"""java-hello-world — compiles and runs `java/HelloWorld.java` (walkthrough 2_1, Kestra namespace dev.testing).

One task runs the script below in a scratch copy of the project files, in a JDK container where a Docker
engine is, else with the worker's JDK; the program's last output line is the task's XCom.
Details: docs/walkthrough.md#python-and-java-2_1
"""
from airflow.sdk import DAG

from include.zoomcamp.defaults import RETRY_DEFAULT_ARGS
from include.zoomcamp.walkthrough import DEV_TESTING_TAGS
from include.zoomcamp.walkthrough.java_runner import JavaProgram, java_task

HELLO_WORLD = JavaProgram("""
cd java
javac -d build HelloWorld.java
java -cp build HelloWorld
""")

with DAG(dag_id="java-hello-world", schedule=None, default_args=RETRY_DEFAULT_ARGS, tags=DEV_TESTING_TAGS,
         doc_md=__doc__):
    java_task("compile_and_run", HELLO_WORLD)
