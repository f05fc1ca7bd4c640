//! Reports on scenario runs: the verdict table for people ([`table`]), JSON ([`json`]), JUnit XML
//! for CI ([`junit`]), the narrated replay ([`explain`]) and the SVG sequence diagram ([`svg`]).

pub mod explain;
pub mod json;
pub mod junit;
pub mod svg;
pub mod table;
