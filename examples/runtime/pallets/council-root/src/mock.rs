//! A minimal runtime: `frame_system` and this pallet, with account 1 standing in for the council.

use crate as pallet_council_root;
use frame_support::{derive_impl, ord_parameter_types, weights::constants::RocksDbWeight};
use frame_system::EnsureSignedBy;
use sp_runtime::BuildStorage;

type Block = frame_system::mocking::MockBlock<Test>;

frame_support::construct_runtime!(
	pub enum Test {
		System: frame_system,
		CouncilRoot: pallet_council_root,
	}
);

#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Test {
	type Block = Block;
	type DbWeight = RocksDbWeight;
}

ord_parameter_types! {
	pub const Council: u64 = 1;
}

impl pallet_council_root::Config for Test {
	type RuntimeEvent = RuntimeEvent;
	type RuntimeCall = RuntimeCall;
	type DispatchOrigin = EnsureSignedBy<Council, u64>;
}

/// Genesis storage at block 1, so that events are recorded.
pub fn new_test_ext() -> sp_io::TestExternalities {
	let storage = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
	let mut ext = sp_io::TestExternalities::new(storage);
	ext.execute_with(|| System::set_block_number(1));
	ext
}
