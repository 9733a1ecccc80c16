//! MPEG-TS (ISO/IEC 13818-1), sans-IO.
