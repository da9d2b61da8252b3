//! One tenant cannot hurt the others: query parameters are checked, the HTTP server
//! bounds slow clients and open connections, alert e-mails are limited per recipient.

mod alerts;
mod http;
mod query;
