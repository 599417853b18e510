"""`make bench`: load the service as deployed and compare its OAuth hot paths with a hello-world view."""
