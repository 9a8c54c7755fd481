package com.example;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

/**
 * Walkthrough 2_1: the Maven project's program. It generates a small series of daily order counts
 * (day d, 1..N, has (d * 7) % 11 + 3 orders), summarises it per week and prints the totals.
 * The last line is the result the DAG keeps: TOTAL_ORDERS=... (BashOperator/DockerOperator XCom).
 */
public class MavenDataProcessor {
    static final int DAYS = 28;

    static int ordersOnDay(int day) {
        return (day * 7) % 11 + 3;
    }

    public static void main(String[] args) {
        int days = args.length > 0 ? Integer.parseInt(args[0]) : DAYS;
        List<Integer> orders = IntStream.rangeClosed(1, days).map(MavenDataProcessor::ordersOnDay).boxed()
                .collect(Collectors.toList());
        Map<Integer, Integer> perWeek = new LinkedHashMap<>();
        for (int day = 1; day <= days; day++) {
            perWeek.merge((day - 1) / 7 + 1, orders.get(day - 1), Integer::sum);
        }
        System.out.println("Maven data processor (Java " + Runtime.version().feature() + "): " + days + " days");
        perWeek.forEach((week, total) -> System.out.println("week " + week + ": " + total + " orders"));
        int total = orders.stream().mapToInt(Integer::intValue).sum();
        System.out.printf("average per day: %.2f%n", (double) total / days);
        System.out.println("TOTAL_ORDERS=" + total);
    }
}
