use crate::{mock::*, Event};
use frame_support::{
	assert_noop, assert_ok,
	dispatch::{GetDispatchInfo, Pays},
	weights::constants::RocksDbWeight,
};
use sp_runtime::{traits::BadOrigin, DispatchError};

/// `System.set_storage`: a call only Root may make.
fn set_storage(key: &[u8], value: &[u8]) -> Box<RuntimeCall> {
	Box::new(RuntimeCall::System(frame_system::Call::set_storage {
		items: vec![(key.to_vec(), value.to_vec())],
	}))
}

#[test]
fn the_council_dispatches_a_root_only_call_free_of_fees() {
	new_test_ext().execute_with(|| {
		let post = CouncilRoot::dispatch_as_root(RuntimeOrigin::signed(1), set_storage(b"k", b"v"))
			.unwrap();
		assert_eq!(post.pays_fee, Pays::No);
		assert_eq!(sp_io::storage::get(b"k").as_deref(), Some(&b"v"[..]));
		System::assert_last_event(Event::Dispatched { result: Ok(()) }.into());
	});
}

#[test]
fn any_other_origin_is_refused_and_nothing_happens() {
	new_test_ext().execute_with(|| {
		for origin in [RuntimeOrigin::signed(2), RuntimeOrigin::root(), RuntimeOrigin::none()] {
			assert_noop!(CouncilRoot::dispatch_as_root(origin, set_storage(b"k", b"v")), BadOrigin);
		}
		assert_eq!(sp_io::storage::get(b"k"), None);
	});
}

#[test]
fn a_failing_inner_call_is_reported_in_the_event_not_as_an_error() {
	new_test_ext().execute_with(|| {
		// remark_with_event needs a signed origin: dispatched as Root it fails.
		let call = Box::new(RuntimeCall::System(frame_system::Call::remark_with_event {
			remark: b"x".to_vec(),
		}));
		assert_ok!(CouncilRoot::dispatch_as_root(RuntimeOrigin::signed(1), call));
		System::assert_last_event(
			Event::Dispatched { result: Err(DispatchError::BadOrigin) }.into(),
		);
	});
}

#[test]
fn the_weight_is_the_inner_calls_plus_the_event_in_its_class() {
	new_test_ext().execute_with(|| {
		let inner = set_storage(b"k", b"v");
		let inner_info = inner.get_dispatch_info();
		let info = RuntimeCall::CouncilRoot(crate::Call::dispatch_as_root { call: inner })
			.get_dispatch_info();
		assert_eq!(info.call_weight, inner_info.call_weight + RocksDbWeight::get().writes(1));
		assert_eq!(info.class, inner_info.class);
	});
}
