"""Tests of gateways/http/routes, one module per router."""
