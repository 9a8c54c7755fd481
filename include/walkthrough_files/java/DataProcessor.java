import java.io.IOException;
import java.math.BigDecimal;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Walkthrough 2_1: a program kept as a project file (Kestra's namespace file), run by the DAG
 * java-with-namespace-files. It reads the sales CSV given as its argument
 * (date,region,product,quantity,unit_price), prints the revenue per product and, last, the total
 * revenue as TOTAL_REVENUE=... (the line the DAG keeps as its XCom).
 */
public class DataProcessor {
    public static void main(String[] args) throws IOException {
        if (args.length != 1) {
            System.err.println("usage: java DataProcessor <sales.csv>");
            System.exit(2);
        }
        List<String> lines = Files.readAllLines(Path.of(args[0]));
        String header = lines.get(0);
        if (!header.equals("date,region,product,quantity,unit_price")) {
            System.err.println("unexpected header: " + header);
            System.exit(2);
        }
        Map<String, BigDecimal> revenueByProduct = new TreeMap<>();
        BigDecimal total = BigDecimal.ZERO;
        for (String line : lines.subList(1, lines.size())) {
            if (line.isBlank()) {
                continue;
            }
            String[] fields = line.split(",");
            BigDecimal revenue = new BigDecimal(fields[4]).multiply(new BigDecimal(fields[3]));
            revenueByProduct.merge(fields[2], revenue, BigDecimal::add);
            total = total.add(revenue);
        }
        System.out.println("Processed " + (lines.size() - 1) + " sales rows");
        revenueByProduct.forEach((product, revenue) -> System.out.println(product + ": " + revenue));
        System.out.println("TOTAL_REVENUE=" + total);
    }
}
