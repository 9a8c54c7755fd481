/** Walkthrough 2_1: the Hello World the DAG java-hello-world compiles and runs. */
public class HelloWorld {
    public static void main(String[] args) {
        System.out.println("Running on Java " + System.getProperty("java.version"));
        System.out.println("Hello, World from Java!");
    }
}
