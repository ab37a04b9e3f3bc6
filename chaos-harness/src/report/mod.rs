//! Reporting: result model, JUnit (quick-junit), JSON, CSV, HTML, history.
