//! Observation: the typed event stream of a scenario and its subscribers.
