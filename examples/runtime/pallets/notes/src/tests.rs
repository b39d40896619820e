use crate::{mock::*, Event, Notes as NotesStorage};
use frame_support::{assert_noop, assert_ok, traits::StorageVersion, BoundedVec};
use sp_runtime::DispatchError;

fn text(bytes: &[u8]) -> BoundedVec<u8, <Test as crate::Config>::MaxNoteLen> {
	bytes.to_vec().try_into().unwrap()
}

#[test]
fn set_note_stores_the_callers_note_and_emits_an_event() {
	new_test_ext().execute_with(|| {
		assert_ok!(Notes::set_note(RuntimeOrigin::signed(7), text(b"hello")));
		assert_eq!(NotesStorage::<Test>::get(7), Some(text(b"hello")));
		System::assert_last_event(Event::NoteSet { who: 7 }.into());

		assert_ok!(Notes::set_note(RuntimeOrigin::signed(7), text(b"again")));
		assert_eq!(NotesStorage::<Test>::get(7), Some(text(b"again")));
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
fn genesis_storage_version_is_zero() {
	new_test_ext().execute_with(|| {
		assert_eq!(StorageVersion::get::<Notes>(), StorageVersion::new(0));
	});
}
