! porous_closure.f90: Fortran 2008 module over the closure's C API (porous_closure.h).
!
! Compile it with your program (module files are compiler-specific) and link the library:
!   gfortran -c $(python -m closure.capi --fortran-module)
!   gfortran app.f90 porous_closure.o $(python -m closure.capi --libs)
!
!   use porous_closure
!   type(closure_type) :: c
!   call c%open()                                   ! the shipped model; c%open('DIR') another
!   call c%query(ids, p, dt, hotspot_area_fraction=a, reaction_rate=r, status=s, ierr=ierr)
!   if (ierr /= CLOSURE_OK) print *, c%last_error()
!   call c%close()
!
! Arrays are assumed-shape (any stride: non-contiguous actuals are copied in and out). Outputs
! are optional: only the ones present are computed. dt is a scalar or an array of size(cell_ids).
! Every procedure takes an optional ierr (a CLOSURE_* code): without it a failure prints the
! message on stderr and stops the program. docs/capi.md describes the calls and codes.
module porous_closure
  use, intrinsic :: iso_c_binding, only: c_associated, c_char, c_double, c_f_pointer, c_int, &
                                         c_int32_t, c_int64_t, c_loc, c_null_char, c_null_ptr, &
                                         c_ptr, c_size_t
  use, intrinsic :: iso_fortran_env, only: error_unit
  implicit none
  private

  integer(c_int), parameter, public :: CLOSURE_OK = 0, CLOSURE_ERR_ARGUMENT = 1, &
                                       CLOSURE_ERR_VALUE = 2, CLOSURE_ERR_UNSUPPORTED = 3, &
                                       CLOSURE_ERR_IO = 4, CLOSURE_ERR_FORMAT = 5, &
                                       CLOSURE_ERR_MISMATCH = 6, CLOSURE_ERR_NOMEM = 7, &
                                       CLOSURE_ERR_INTERNAL = 8, CLOSURE_ERR_WORKER = 9, &
                                       CLOSURE_ERR_TIMEOUT = 10, CLOSURE_ERR_PROTOCOL = 11
  integer(c_int32_t), parameter, public :: CLOSURE_STATUS_OK = 0, &
                                           CLOSURE_STATUS_NOT_SHOCKED = 1, &
                                           CLOSURE_STATUS_OUTSIDE_ENVELOPE = 2

  ! closure_outputs of the header: pointers, NULL for the outputs not asked for
  type, bind(c) :: c_outputs
    type(c_ptr) :: hotspot_area_fraction, hotspot_temperature, reaction_rate, uncertainty, &
                   burned_fraction, status
  end type c_outputs

  !> A closure handle (closure_t *): open it, query it every step, close it.
  type, public :: closure_type
    private
    type(c_ptr) :: ptr = c_null_ptr
  contains
    procedure :: open => f_open
    procedure :: attach => f_attach
    procedure, private :: query_dt_scalar, query_dt_array
    generic :: query => query_dt_scalar, query_dt_array
    procedure :: release => f_release
    procedure :: save_state => f_save_state
    procedure :: load_state => f_load_state
    procedure :: last_error => f_last_error
    procedure :: n_cells => f_n_cells
    procedure :: is_open => f_is_open
    procedure :: close => f_close
  end type closure_type

  interface
    function c_open(model_dir) bind(c, name="closure_open") result(h)
      import :: c_ptr
      type(c_ptr), value :: model_dir
      type(c_ptr) :: h
    end function c_open
    function c_query(h, n, ids, p, dt, n_dt, out) bind(c, name="closure_query") result(rc)
      import :: c_ptr, c_int, c_int64_t, c_double, c_outputs
      type(c_ptr), value :: h
      integer(c_int64_t), value :: n, n_dt
      integer(c_int64_t), intent(in) :: ids(*)
      real(c_double), intent(in) :: p(*), dt(*)
      type(c_outputs), intent(in) :: out
      integer(c_int) :: rc
    end function c_query
    function c_release(h, n, ids) bind(c, name="closure_release") result(rc)
      import :: c_ptr, c_int, c_int64_t
      type(c_ptr), value :: h
      integer(c_int64_t), value :: n
      integer(c_int64_t), intent(in) :: ids(*)
      integer(c_int) :: rc
    end function c_release
    function c_save_state(h, path) bind(c, name="closure_save_state") result(rc)
      import :: c_ptr, c_int, c_char
      type(c_ptr), value :: h
      character(kind=c_char), intent(in) :: path(*)
      integer(c_int) :: rc
    end function c_save_state
    function c_load_state(h, path) bind(c, name="closure_load_state") result(rc)
      import :: c_ptr, c_int, c_char
      type(c_ptr), value :: h
      character(kind=c_char), intent(in) :: path(*)
      integer(c_int) :: rc
    end function c_load_state
    function c_last_error(h) bind(c, name="closure_last_error") result(msg)
      import :: c_ptr
      type(c_ptr), value :: h
      type(c_ptr) :: msg
    end function c_last_error
    function c_last_error_code(h) bind(c, name="closure_last_error_code") result(code)
      import :: c_ptr, c_int
      type(c_ptr), value :: h
      integer(c_int) :: code
    end function c_last_error_code
    function c_set_error(h, code, msg) bind(c, name="closure_set_error") result(rc)
      import :: c_ptr, c_int, c_char
      type(c_ptr), value :: h
      integer(c_int), value :: code
      character(kind=c_char), intent(in) :: msg(*)
      integer(c_int) :: rc
    end function c_set_error
    function c_n_cells(h) bind(c, name="closure_n_cells") result(n)
      import :: c_ptr, c_int64_t
      type(c_ptr), value :: h
      integer(c_int64_t) :: n
    end function c_n_cells
    subroutine c_close(h) bind(c, name="closure_close")
      import :: c_ptr
      type(c_ptr), value :: h
    end subroutine c_close
    function c_strlen(s) bind(c, name="strlen") result(n)
      import :: c_ptr, c_size_t
      type(c_ptr), value :: s
      integer(c_size_t) :: n
    end function c_strlen
  end interface

contains

  ! a Fortran string as a NUL-terminated C string (trailing blanks dropped)
  pure function c_string(s) result(b)
    character(len=*), intent(in) :: s
    character(kind=c_char) :: b(len_trim(s) + 1)
    integer :: i
    do i = 1, len_trim(s)
      b(i) = s(i:i)
    end do
    b(len_trim(s) + 1) = c_null_char
  end function c_string

  ! report rc: into ierr when present, else (on failure) message and stop
  subroutine finish(self, rc, ierr)
    class(closure_type), intent(in) :: self
    integer(c_int), intent(in) :: rc
    integer, intent(out), optional :: ierr
    if (present(ierr)) then
      ierr = int(rc)
    else if (rc /= CLOSURE_OK) then
      write (error_unit, '(a, i0, a, a)') 'porous_closure: error ', rc, ': ', self%last_error()
      error stop 1
    end if
  end subroutine finish

  ! a failed argument check of this module, recorded as the C library's last error
  subroutine fail_arg(self, msg, ierr)
    class(closure_type), intent(in) :: self
    character(len=*), intent(in) :: msg
    integer, intent(out), optional :: ierr
    call finish(self, c_set_error(self%ptr, CLOSURE_ERR_ARGUMENT, c_string(msg)), ierr)
  end subroutine fail_arg

  !> Open the model in model_dir (absent: the shipped default).
  subroutine f_open(self, model_dir, ierr)
    class(closure_type), intent(inout) :: self
    character(len=*), intent(in), optional :: model_dir
    integer, intent(out), optional :: ierr
    character(kind=c_char), allocatable, target :: buf(:)
    if (c_associated(self%ptr)) call c_close(self%ptr)
    if (present(model_dir)) then
      buf = c_string(model_dir)
      self%ptr = c_open(c_loc(buf))
    else
      self%ptr = c_open(c_null_ptr)
    end if
    if (c_associated(self%ptr)) then
      call finish(self, CLOSURE_OK, ierr)
    else
      call finish(self, c_last_error_code(c_null_ptr), ierr)
    end if
  end subroutine f_open

  !> For binding modules (porous_closure_mpi): take over a handle opened in C; a NULL one
  !> reports the failed open's error (closure_last_error(NULL)) as open does.
  subroutine f_attach(self, ptr, ierr)
    class(closure_type), intent(inout) :: self
    type(c_ptr), intent(in) :: ptr
    integer, intent(out), optional :: ierr
    if (c_associated(self%ptr)) call c_close(self%ptr)
    self%ptr = ptr
    if (c_associated(self%ptr)) then
      call finish(self, CLOSURE_OK, ierr)
    else
      call finish(self, c_last_error_code(c_null_ptr), ierr)
    end if
  end subroutine f_attach

  subroutine query_dt_scalar(self, cell_ids, pressure, dt, hotspot_area_fraction, &
                             hotspot_temperature, reaction_rate, uncertainty, burned_fraction, &
                             status, ierr)
    class(closure_type), intent(inout) :: self
    integer(c_int64_t), intent(in), contiguous :: cell_ids(:)
    real(c_double), intent(in), contiguous :: pressure(:)
    real(c_double), intent(in) :: dt
    real(c_double), intent(out), optional, target, contiguous :: hotspot_area_fraction(:), &
      hotspot_temperature(:), reaction_rate(:), uncertainty(:), burned_fraction(:)
    integer(c_int32_t), intent(out), optional, target, contiguous :: status(:)
    integer, intent(out), optional :: ierr
    real(c_double) :: d(1)
    d(1) = dt
    call query_dt_array(self, cell_ids, pressure, d, hotspot_area_fraction, &
                        hotspot_temperature, reaction_rate, uncertainty, burned_fraction, &
                        status, ierr)
  end subroutine query_dt_scalar

  !> Response of the cells cell_ids at pressure (Pa) over a step dt (s; scalar or per cell).
  subroutine query_dt_array(self, cell_ids, pressure, dt, hotspot_area_fraction, &
                            hotspot_temperature, reaction_rate, uncertainty, burned_fraction, &
                            status, ierr)
    class(closure_type), intent(inout) :: self
    integer(c_int64_t), intent(in), contiguous :: cell_ids(:)
    real(c_double), intent(in), contiguous :: pressure(:)
    real(c_double), intent(in), contiguous :: dt(:)
    real(c_double), intent(out), optional, target, contiguous :: hotspot_area_fraction(:), &
      hotspot_temperature(:), reaction_rate(:), uncertainty(:), burned_fraction(:)
    integer(c_int32_t), intent(out), optional, target, contiguous :: status(:)
    integer, intent(out), optional :: ierr
    type(c_outputs) :: out
    integer(c_int64_t) :: n
    character(len=32) :: what
    n = size(cell_ids, kind=c_int64_t)
    out = c_outputs(c_null_ptr, c_null_ptr, c_null_ptr, c_null_ptr, c_null_ptr, c_null_ptr)
    if (size(pressure, kind=c_int64_t) /= n) then
      call fail_arg(self, 'pressure has '//itoa(size(pressure, kind=c_int64_t))// &
                    ' values, cell_ids '//itoa(n), ierr)
      return
    end if
    what = ''
    if (present(hotspot_area_fraction)) then
      if (size(hotspot_area_fraction, kind=c_int64_t) /= n) what = 'hotspot_area_fraction'
      if (n > 0) out%hotspot_area_fraction = c_loc(hotspot_area_fraction)
    end if
    if (present(hotspot_temperature)) then
      if (size(hotspot_temperature, kind=c_int64_t) /= n) what = 'hotspot_temperature'
      if (n > 0) out%hotspot_temperature = c_loc(hotspot_temperature)
    end if
    if (present(reaction_rate)) then
      if (size(reaction_rate, kind=c_int64_t) /= n) what = 'reaction_rate'
      if (n > 0) out%reaction_rate = c_loc(reaction_rate)
    end if
    if (present(uncertainty)) then
      if (size(uncertainty, kind=c_int64_t) /= n) what = 'uncertainty'
      if (n > 0) out%uncertainty = c_loc(uncertainty)
    end if
    if (present(burned_fraction)) then  ! the C library names it if the model lacks it
      if (size(burned_fraction, kind=c_int64_t) /= n) what = 'burned_fraction'
      if (n > 0) out%burned_fraction = c_loc(burned_fraction)
    end if
    if (present(status)) then
      if (size(status, kind=c_int64_t) /= n) what = 'status'
      if (n > 0) out%status = c_loc(status)
    end if
    if (what /= '') then
      call fail_arg(self, trim(what)//' must have size(cell_ids) = '//itoa(n)//' values', ierr)
      return
    end if
    call finish(self, c_query(self%ptr, n, cell_ids, pressure, dt, size(dt, kind=c_int64_t), &
                              out), ierr)
  end subroutine query_dt_array

  !> Free the state of cells cell_ids (ids without state are ignored).
  subroutine f_release(self, cell_ids, ierr)
    class(closure_type), intent(inout) :: self
    integer(c_int64_t), intent(in), contiguous :: cell_ids(:)
    integer, intent(out), optional :: ierr
    call finish(self, c_release(self%ptr, size(cell_ids, kind=c_int64_t), cell_ids), ierr)
  end subroutine f_release

  !> All per-cell state to a file, atomically.
  subroutine f_save_state(self, path, ierr)
    class(closure_type), intent(inout) :: self
    character(len=*), intent(in) :: path
    integer, intent(out), optional :: ierr
    call finish(self, c_save_state(self%ptr, c_string(path)), ierr)
  end subroutine f_save_state

  !> Replace all per-cell state by a file's (checked first: a bad file changes nothing).
  subroutine f_load_state(self, path, ierr)
    class(closure_type), intent(inout) :: self
    character(len=*), intent(in) :: path
    integer, intent(out), optional :: ierr
    call finish(self, c_load_state(self%ptr, c_string(path)), ierr)
  end subroutine f_load_state

  !> The message of the last failed call (of this handle; of this thread before an open).
  function f_last_error(self) result(msg)
    class(closure_type), intent(in) :: self
    character(len=:), allocatable :: msg
    type(c_ptr) :: p
    character(kind=c_char), pointer :: chars(:)
    integer(c_size_t) :: n, i
    p = c_last_error(self%ptr)
    n = c_strlen(p)
    allocate (character(len=n) :: msg)
    if (n == 0) return
    call c_f_pointer(p, chars, [n])
    do i = 1, n
      msg(i:i) = chars(i)
    end do
  end function f_last_error

  !> Number of cells with state (-1 before open).
  function f_n_cells(self) result(n)
    class(closure_type), intent(in) :: self
    integer(c_int64_t) :: n
    n = c_n_cells(self%ptr)
  end function f_n_cells

  logical function f_is_open(self)
    class(closure_type), intent(in) :: self
    f_is_open = c_associated(self%ptr)
  end function f_is_open

  !> Free the handle and its state.
  subroutine f_close(self)
    class(closure_type), intent(inout) :: self
    if (c_associated(self%ptr)) call c_close(self%ptr)
    self%ptr = c_null_ptr
  end subroutine f_close

  pure function itoa(i) result(s)
    integer(c_int64_t), intent(in) :: i
    character(len=:), allocatable :: s
    character(len=24) :: b
    write (b, '(i0)') i
    s = trim(b)
  end function itoa

end module porous_closure
