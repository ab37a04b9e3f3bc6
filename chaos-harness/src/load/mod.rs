//! Load generation: open- and closed-loop load, HDR histograms, outcome accounting.
