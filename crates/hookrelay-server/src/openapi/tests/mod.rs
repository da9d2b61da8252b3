//! The document's tests: agreement with the reference contract, with the router, with
//! the parsers' limits, and with what the server answers.

mod documented;
mod limits;
mod reference;
mod routes;
mod tokens;
