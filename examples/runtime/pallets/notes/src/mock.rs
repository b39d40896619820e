//! A minimal runtime holding only `frame_system` and this pallet.

use crate as pallet_notes;
use frame_support::{derive_impl, traits::ConstU32, weights::constants::RocksDbWeight};
use sp_runtime::BuildStorage;

type Block = frame_system::mocking::MockBlock<Test>;

frame_support::construct_runtime!(
	pub enum Test {
		System: frame_system,
		Notes: pallet_notes,
	}
);

#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Test {
	type Block = Block;
	type DbWeight = RocksDbWeight;
}

impl pallet_notes::Config for Test {
	type RuntimeEvent = RuntimeEvent;
	type MaxNoteLen = ConstU32<8>;
}

/// Genesis storage of every pallet (so storage versions are set), at block 1 so that events
/// are recorded.
pub fn new_test_ext() -> sp_io::TestExternalities {
	let storage = RuntimeGenesisConfig::default().build_storage().unwrap();
	let mut ext = sp_io::TestExternalities::new(storage);
	ext.execute_with(|| System::set_block_number(1));
	ext
}
