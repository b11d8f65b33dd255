"""The wayhome service: Kafka topics, the dispatcher, notices, delivery, the HTTP API and the CLI.

`geo`, `subscribers` and `chain` are libraries that know nothing of Kafka or HTTP; this package
wires them into the running service.
"""
