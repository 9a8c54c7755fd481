"""Walkthrough 2_1: a script kept as a project file (Kestra's namespace file) that a DAG runs.

python process_sales_data.py <sales.csv> <summary.csv>

Reads the sales rows (date,region,product,quantity,unit_price), writes one row per region with its
orders, units and revenue (sorted by revenue, highest first) and prints the summary. Standard
library only: the script runs with any Python 3.
"""
import csv
import sys
from collections import defaultdict
from decimal import Decimal

COLUMNS = ("date", "region", "product", "quantity", "unit_price")


def summarise(rows):
    totals = defaultdict(lambda: {"orders": 0, "units": 0, "revenue": Decimal(0)})
    for row in rows:
        region = totals[row["region"]]
        region["orders"] += 1
        region["units"] += int(row["quantity"])
        region["revenue"] += int(row["quantity"]) * Decimal(row["unit_price"])
    return sorted(totals.items(), key=lambda item: (-item[1]["revenue"], item[0]))


def main(source, target):
    with open(source, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            sys.exit(f"{source}: missing column(s) {missing}")
        summary = summarise(reader)
    with open(target, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["region", "orders", "units", "revenue"])
        for region, t in summary:
            writer.writerow([region, t["orders"], t["units"], f"{t['revenue']:.2f}"])
            print(f"{region}: {t['orders']} orders, {t['units']} units, revenue {t['revenue']:.2f}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[2])
    main(sys.argv[1], sys.argv[2])
