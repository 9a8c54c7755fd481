SELECT count(*) AS orders,
       count(DISTINCT customer_name) AS customers,
       round(sum(total), 2) AS total_revenue,
       round(avg(quantity), 2) AS avg_quantity
FROM orders
