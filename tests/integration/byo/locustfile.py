"""A team's own locustfile: run as it is (host, users and run time from LOCUST_* variables)."""

import csv
import os

from locust import HttpUser, between, task

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "users.csv"), newline="") as fh:
    USERS = [row["user"] for row in csv.DictReader(fh)]


class Shopper(HttpUser):
    wait_time = between(0.01, 0.05)

    @task
    def browse(self):
        self.client.get("/products", name="list products")
        self.client.get("/products/7", name="product")
        self.client.post("/cart", json={"user": USERS[0]}, name="add to cart")
