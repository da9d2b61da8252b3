//! Integration tests: the real `hookrelay` binary, over real HTTP, on a real SQLite file.
//! One test binary for the crate, so the suite links once.

mod receiver;
mod smtp;
mod support;

mod alerts;
mod api_conventions;
mod auth;
mod backup;
mod cli;
mod cluster;
mod config;
mod delivery;
mod durability;
mod erasure;
mod events;
mod idempotency;
mod limits;
mod metrics;
mod openapi;
mod paging;
mod persistence;
mod recoveries;
mod retention;
mod sdk;
mod seed_examples;
mod ssrf;
mod standard_webhooks;
mod tenancy;
mod traces;
mod validation;
mod webhook_settings;
