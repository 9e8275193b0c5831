"""The HTTP side's tests: the Chalice test client, `chalice local`, the Lambda package."""
