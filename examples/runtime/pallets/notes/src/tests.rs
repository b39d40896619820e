use crate::{
	migrations::v1::{v0, MigrateV0ToV1},
	mock::*,
	Event, Note, Notes as NotesStorage,
};
use frame_support::{
	assert_noop, assert_ok,
	traits::{OnRuntimeUpgrade, StorageVersion},
	weights::constants::RocksDbWeight,
	BoundedVec,
};
use sp_runtime::DispatchError;

fn text(bytes: &[u8]) -> BoundedVec<u8, <Test as crate::Config>::MaxNoteLen> {
	bytes.to_vec().try_into().unwrap()
}

fn note(bytes: &[u8], set_at: u64) -> Note<Test> {
	Note { text: text(bytes), set_at }
}

#[test]
fn set_note_stores_the_callers_note_with_the_block_and_emits_an_event() {
	new_test_ext().execute_with(|| {
		assert_ok!(Notes::set_note(RuntimeOrigin::signed(7), text(b"hello")));
		assert_eq!(NotesStorage::<Test>::get(7), Some(note(b"hello", 1)));
		System::assert_last_event(Event::NoteSet { who: 7 }.into());

		System::set_block_number(5);
		assert_ok!(Notes::set_note(RuntimeOrigin::signed(7), text(b"again")));
		assert_eq!(NotesStorage::<Test>::get(7), Some(note(b"again", 5)));
		assert_eq!(NotesStorage::<Test>::get(8), None);
	});
}

#[test]
fn set_note_needs_a_signed_origin() {
	new_test_ext().execute_with(|| {
		assert_noop!(Notes::set_note(RuntimeOrigin::none(), text(b"x")), DispatchError::BadOrigin);
		assert_noop!(Notes::set_note(RuntimeOrigin::root(), text(b"x")), DispatchError::BadOrigin);
	});
}

#[test]
fn notes_longer_than_max_note_len_cannot_be_built() {
	let too_long: Result<BoundedVec<u8, <Test as crate::Config>::MaxNoteLen>, _> =
		b"123456789".to_vec().try_into();
	assert!(too_long.is_err());
}

#[test]
fn genesis_storage_version_is_one() {
	new_test_ext().execute_with(|| {
		assert_eq!(StorageVersion::get::<Notes>(), StorageVersion::new(1));
	});
}

#[test]
fn migration_v0_to_v1_translates_every_note_and_bumps_the_version() {
	new_test_ext().execute_with(|| {
		StorageVersion::new(0).put::<Notes>();
		v0::Notes::<Test>::insert(1, text(b"one"));
		v0::Notes::<Test>::insert(2, text(b"two"));
		System::set_block_number(42);

		let weight = MigrateV0ToV1::<Test>::on_runtime_upgrade();

		assert_eq!(NotesStorage::<Test>::get(1), Some(note(b"one", 0)));
		assert_eq!(NotesStorage::<Test>::get(2), Some(note(b"two", 0)));
		assert_eq!(NotesStorage::<Test>::iter().count(), 2);
		assert_eq!(StorageVersion::get::<Notes>(), StorageVersion::new(1));
		// Two notes, plus reading and writing the storage version.
		assert_eq!(weight, RocksDbWeight::get().reads_writes(3, 3));
	});
}

#[test]
fn migration_v0_to_v1_is_a_no_op_once_at_version_one() {
	new_test_ext().execute_with(|| {
		assert_ok!(Notes::set_note(RuntimeOrigin::signed(3), text(b"kept")));

		let weight = MigrateV0ToV1::<Test>::on_runtime_upgrade();

		assert_eq!(weight, RocksDbWeight::get().reads(1));
		assert_eq!(NotesStorage::<Test>::get(3), Some(note(b"kept", 1)));
		assert_eq!(StorageVersion::get::<Notes>(), StorageVersion::new(1));
	});
}
