SELECT customer_name, count(*) AS orders, round(sum(total), 2) AS revenue
FROM orders
GROUP BY customer_name
ORDER BY revenue DESC, customer_name
LIMIT {{ top_customers }}
