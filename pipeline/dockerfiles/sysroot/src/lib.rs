//! Links `alloc` so that building this crate with `-Z build-std=core,alloc` produces the sysroot.
#![no_std]
extern crate alloc;
