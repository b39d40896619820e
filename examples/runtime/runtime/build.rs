//! Compiles this crate to wasm (substrate-wasm-builder) whenever the native crate is built.

#[cfg(all(feature = "std", feature = "metadata-hash"))]
fn main() {
	substrate_wasm_builder::WasmBuilder::init_with_defaults()
		.enable_metadata_hash("UNIT", 12)
		.build();
}

#[cfg(all(feature = "std", not(feature = "metadata-hash")))]
fn main() {
	substrate_wasm_builder::WasmBuilder::build_using_defaults();
}

/// The wasm build itself compiles this crate without `std`: nothing to do then.
#[cfg(not(feature = "std"))]
fn main() {}
